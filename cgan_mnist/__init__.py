"""cgan-mnist: conditional GANs on MNIST with Keras 3 / TensorFlow.

Modules, in the order data flows: ``data`` (find, check, feed MNIST,
Fashion-MNIST or a user's .npz; ``idx`` reads the IDX format), ``models`` (the
networks), ``gan`` (the training step), ``training`` (a whole run),
``outputs`` (the files), ``tensorboard`` (event files of a run), ``console``
(messages and log.txt), ``generate`` (sampling a trained generator), ``cli``
(the commands). ``config`` and ``errors`` are shared by all.
"""

__version__ = "0.1.0"
