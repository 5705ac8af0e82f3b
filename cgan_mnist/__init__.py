"""cgan-mnist: conditional GANs on MNIST with Keras 3 / TensorFlow.

From Python (TensorFlow loads on first use, not on import)::

    import cgan_mnist as cg
    images, labels = cg.load_generator("runs/dcgan").sample([3, 7], n=8, seed=0)

Modules, in the order data flows: ``data`` and ``sources`` (the datasets and
their files; ``idx`` reads the IDX format), ``models`` (the networks), ``gan``
(the training step), ``devices`` (tf.distribute strategy, mixed precision),
``training`` (a run: ``build_run`` and the loop), ``run_outputs`` (what a run
writes after each epoch), ``run_folder`` (the run folder's layout, config.json,
lock and file formats), ``outputs`` (images, plots, atomic writes),
``tensorboard``, ``console`` (messages and log.txt), ``generate`` (sampling),
``evaluator``, ``measuring``, ``metrics``, ``report`` and ``evaluation``
(sample quality), ``arguments`` and ``cli`` (the three commands), ``api``
(the same as functions). ``config`` and ``errors`` are shared by all.
"""

from .api import Generator, evaluate, load_generator, train

__all__ = ["Generator", "evaluate", "load_generator", "train"]
__version__ = "0.1.0"
