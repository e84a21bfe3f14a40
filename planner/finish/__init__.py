"""Finishing: assembly, burned-in lyrics, timeline, storyboard, and the job's last steps."""
