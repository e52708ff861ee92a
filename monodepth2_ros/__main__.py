import sys

from monodepth2_ros.cli.main import main

sys.exit(main())
