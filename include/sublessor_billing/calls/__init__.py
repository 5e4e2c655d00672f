"""400 calls: message validation, intake into the call log, judging, quarantine."""
