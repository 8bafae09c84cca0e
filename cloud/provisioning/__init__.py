"""Edge provisioning: one-time enrolment codes, edge identities and their broker accounts."""
