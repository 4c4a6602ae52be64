"""Export for deployment: ``model.export(path, format="onnx")`` (onnx.py). Needs the optional
extra ``forgeml[onnx]`` (onnx + onnxruntime); ``import forgeml`` never does."""
