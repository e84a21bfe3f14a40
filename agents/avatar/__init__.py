"""The virtual human. For now: the speech + motion demo (`kantoku demo`) and its motion sheet."""
