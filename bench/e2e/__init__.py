"""End-to-end benchmark: receipt at the intake to the job on a unit's phone."""
