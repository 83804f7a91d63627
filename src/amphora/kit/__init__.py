"""Framework code with no podcast knowledge: database, jobs, storage, mail, errors, security."""
