"""Planning: the brief, the shot plan, the heuristic planner, the LLM planner and its repair."""
