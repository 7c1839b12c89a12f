"""Training and evaluation of the out-of-body classifier (extra ``train``).

Modules, one job each:

- `data`: discover labelled images and video frames, load them, split by source;
- `augment`: domain augmentations applied to both classes;
- `network`: EfficientNet-Lite0 in plain torch with ImageNet weights;
- `fit`: the training loop, checkpoints, resume, threshold choice;
- `export`: ONNX export with preprocessing in the graph;
- `metrics`, `evaluate`, `report`: measurement (ONNX Runtime only, no torch) and the HTML report.

Only `network`, `fit` and `export` import torch; nothing here is imported by the core package.
"""
