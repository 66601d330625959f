"""Decision rules that are pure functions (no I/O): holdout multiplicity and what authors may learn."""
