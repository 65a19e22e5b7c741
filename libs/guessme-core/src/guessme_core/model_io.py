"""The model's input and output shape, without torch: what serving needs to know about the CNN."""

from guessme_contracts.limits import NUM_DIGITS

IMAGE_SIZE = 28  # the CNN takes (N, 1, 28, 28) images, MNIST's size
NUM_CLASSES = NUM_DIGITS  # one class per digit the game plays with
