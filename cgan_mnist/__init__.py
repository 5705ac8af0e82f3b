"""cgan-mnist: conditional GANs on MNIST with Keras 3 / TensorFlow.

Modules, in the order data flows: ``data`` (find, check, feed MNIST),
``models`` (the networks), ``gan`` (the training step), ``training`` (a whole
run), ``outputs`` (the files), ``generate`` (sampling a trained generator),
``metrics`` and ``evaluation`` (sample quality), ``cli`` (the three commands).
``config`` and ``errors`` are shared by all.
"""

__version__ = "0.1.0"
