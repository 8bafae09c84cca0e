"""Programmes (service packages), care pathways, questionnaires and the monthly QC score."""
