"""ffmpeg and images: probing, the local studio's effects, stitching, image decoding."""
