"""Explanation methods: attributions (saliency, SmoothGrad, integrated gradients, Grad-CAM,
occlusion maps), faithfulness, and occlusion itself.

On arrays, the user's own keras.Model in and maps out (on_arrays.py): saliency, smoothgrad,
integrated_gradients, gradcam and occlusion, as `kc.attributions.saliency(model, x)`. The methods
themselves, on a logits model, are kerascnn.attributions.gradients' functions of the same names.
"""
from kerascnn.attributions.on_arrays import gradcam, integrated_gradients, occlusion, saliency, smoothgrad

__all__ = ["saliency", "smoothgrad", "integrated_gradients", "gradcam", "occlusion"]
