"""The studio over HTTP (`kantoku studio`): a brief in, its plan to review and edit, its
events and files out."""
