"""Reading back: chart shapes and home-monitoring summaries (pure), over stored readings."""
