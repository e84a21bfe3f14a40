"""kantoku services: gRPC servicers for speech, motion, image and video, with a shared core."""
