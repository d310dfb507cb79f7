"""What jobs write: images and atomic files, TensorBoard, heat-maps, animations, contact sheets."""
