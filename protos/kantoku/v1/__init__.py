"""Generated gRPC code for the kantoku.v1 protos (regenerate with `make protos`)."""
