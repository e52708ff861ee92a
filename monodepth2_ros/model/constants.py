"""Numbers the official Monodepth2 checkpoints depend on. Change none of them."""

__all__ = [
    "ENCODER_MEAN",
    "ENCODER_STD",
    "POSE_SCALE",
    "STEREO_SCALE",
    "DECODER_CHANNELS",
    "NUM_SCALES",
    "DEFAULT_HEIGHT",
    "DEFAULT_WIDTH",
]

# The encoder normalises [0, 1] RGB as (x - 0.45) / 0.225 on every channel (the official choice, not
# the per-channel ImageNet statistics).
ENCODER_MEAN = 0.45
ENCODER_STD = 0.225

# The pose decoder's raw output is multiplied by 0.01 so that initial motions are small.
POSE_SCALE = 0.01

# Stereo-trained models see a 0.1 unit baseline for KITTI's 0.54 m: depth * 5.4 is metric.
STEREO_SCALE = 5.4

# Channels of the depth decoder's stages, from full resolution (scale 0) to 1/32.
DECODER_CHANNELS = (16, 32, 64, 128, 256)

# The depth decoder predicts disparity at input size / 2**s for s in 0..3.
NUM_SCALES = 4

# The released models' input size.
DEFAULT_HEIGHT = 192
DEFAULT_WIDTH = 640
