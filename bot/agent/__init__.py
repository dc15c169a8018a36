"""The agent: a langgraph graph that routes chat turns to skills, with Claude or the evidence
engine."""
