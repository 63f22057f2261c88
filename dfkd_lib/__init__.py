"""dfkd_lib: data-free knowledge distillation in PyTorch, the library of the dfkd-book."""
__version__ = "0.1.0"
