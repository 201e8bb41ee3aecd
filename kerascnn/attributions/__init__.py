"""Explanation methods: attributions (saliency, SmoothGrad, integrated gradients, Grad-CAM,
occlusion maps), faithfulness, and occlusion itself."""
