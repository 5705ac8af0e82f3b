"""cgan-mnist: conditional GANs on MNIST with Keras 3 / TensorFlow.

Modules, in the order data flows: ``data`` (find, check, feed MNIST,
Fashion-MNIST or a user's .npz; ``idx`` reads the IDX format), ``models`` (the
networks), ``gan`` (the training step), ``devices`` (tf.distribute strategy,
mixed precision), ``training`` (a whole run), ``outputs`` (the files),
``tensorboard`` (event files of a run), ``console`` (messages and log.txt),
``generate`` (sampling a trained generator), ``metrics`` and ``evaluation``
(sample quality), ``cli`` (the three commands). ``config`` and ``errors`` are
shared by all.
"""

__version__ = "0.1.0"
