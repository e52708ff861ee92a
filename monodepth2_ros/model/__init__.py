"""Pure-torch core: networks, geometry, losses and the official checkpoint format (no ROS)."""
