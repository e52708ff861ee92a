"""Monodepth2 depth node (optionally the pose node and RViz2) on one camera.

    ros2 launch monodepth2_ros depth.launch.py image:=/camera/image_raw camera_info:=/camera/camera_info
    ros2 launch monodepth2_ros depth.launch.py weights:=$HOME/models/mono+stereo_640x192 device:=cuda rviz:=true

The node list, parameters and remappings come from monodepth2_ros.ros.launch_plan (shared with
`monodepth2 run`); this file only declares the arguments and turns the plan into Node actions once the
arguments are known. Only APIs available since ROS 2 Humble are used.

Every camera frame arrives: the nodes subscribe with qos_reliability auto (config/*.yaml), reliable
while the camera driver publishes reliable (the ROS default) and best effort when it publishes best
effort. A best-effort driver of large images in another process loses most frames with Fast DDS's
default transports; then start the driver *and* this launch with FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA
(both ends; one alone delivers nothing), or make the driver reliable. See the README, "Large images
over DDS". Nothing here sets the variable: it must match the driver's process, which this file does not start.
The depth node's process loads config/fastdds_nodes.xml (a larger shared-memory segment for its
outputs, compatible with peers on defaults) unless Fast DDS is configured otherwise.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from monodepth2_ros.ros.launch_plan import DEPTH_LAUNCH_ARGUMENTS, depth_launch_plan


def _nodes(context, *args, **kwargs):
    values = {argument.name: LaunchConfiguration(argument.name).perform(context) for argument in DEPTH_LAUNCH_ARGUMENTS}
    return [Node(**spec.launch_kwargs()) for spec in depth_launch_plan(values)]


def generate_launch_description():
    arguments = [
        DeclareLaunchArgument(argument.name, default_value=argument.default, description=argument.description)
        for argument in DEPTH_LAUNCH_ARGUMENTS
    ]
    return LaunchDescription(arguments + [OpaqueFunction(function=_nodes)])
