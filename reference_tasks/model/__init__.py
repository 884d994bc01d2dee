"""The paper's MLP: its shape written once (``spec``), and the model in NumPy, PyTorch and Keras.

Only ``torch_model``, ``keras_model`` and ``crossframework`` import a framework.
"""
