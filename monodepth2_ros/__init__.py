"""Monodepth2 for ROS 2: self-supervised monocular depth and visual odometry.

Layers, each knowing only those below it::

    model/       pure torch: networks, geometry, losses, checkpoint format
    data/        reading frames and cameras from bags and folders (no torch, no ROS)
    synthetic/   the ground-truth street world the tests, figures and demo stand on
    inference/   DepthEstimator / PoseEstimator: frames in, metric depth and motion out
    evaluation/  depth metrics, trajectory alignment and error, reports
    training/    datasets of triplets, the Trainer
    ros/         thin rclpy adapters (the only layer importing rclpy)
    cli/         the ``monodepth2`` command
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
