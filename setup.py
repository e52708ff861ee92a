"""ament_python package: `colcon build` installs it for `ros2 run` / `ros2 launch`; pip installs it anywhere."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "monodepth2_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.rviz") + glob("config/*.xml")),
    ],
    package_data={PACKAGE: ["weights/*/*.pth", "weights/*/*.md", "weights/*/*.yaml"]},
    include_package_data=True,
    python_requires=">=3.10",
    install_requires=["numpy", "opencv-python-headless", "pyyaml", "tqdm", "rosbags>=0.11", "matplotlib", "scikit-image"],
    zip_safe=False,
    maintainer="monodepth2_ros maintainers",
    maintainer_email="maintainers@monodepth2-ros.invalid",
    description="Monodepth2 self-supervised monocular depth and odometry for ROS 2",
    license="Apache-2.0",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [
            "monodepth2 = monodepth2_ros.cli.main:main",
            "depth_node = monodepth2_ros.ros.depth_node:main",
            "pose_node = monodepth2_ros.ros.pose_node:main",
            "depth_lifecycle_node = monodepth2_ros.ros.lifecycle:depth_main",
            "pose_lifecycle_node = monodepth2_ros.ros.lifecycle:pose_main",
        ],
    },
)
