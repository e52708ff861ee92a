"""Monodepth2 depth for Nav2: metric depth, a laser scan and a sparse point cloud for the costmap.

    ros2 launch monodepth2_ros nav2_depth.launch.py image:=/camera/image_raw camera_info:=/camera/camera_info \
        camera_height:=0.35 scan_frame_id:=camera_link
    ros2 launch monodepth2_ros nav2_depth.launch.py lifecycle_manager:=true   # managed bringup

Feeds config/nav2_costmap_example.yaml's ObstacleLayer (scan_topic) and VoxelLayer (points_topic).
The node list, parameters and remappings come from monodepth2_ros.ros.launch_plan; this file only
declares the arguments and turns the plan into Node actions. Only APIs available since ROS 2 Humble.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from monodepth2_ros.ros.launch_plan import NAV2_DEPTH_LAUNCH_ARGUMENTS, nav2_depth_launch_plan


def _nodes(context, *args, **kwargs):
    values = {argument.name: LaunchConfiguration(argument.name).perform(context) for argument in NAV2_DEPTH_LAUNCH_ARGUMENTS}
    return [Node(**spec.launch_kwargs()) for spec in nav2_depth_launch_plan(values)]


def generate_launch_description():
    arguments = [
        DeclareLaunchArgument(argument.name, default_value=argument.default, description=argument.description)
        for argument in NAV2_DEPTH_LAUNCH_ARGUMENTS
    ]
    return LaunchDescription(arguments + [OpaqueFunction(function=_nodes)])
