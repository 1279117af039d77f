"""The detector stage: frames in, ``Detections`` out. Pixels go no further than here.

``protocol`` says what any detector offers (and imports no runtime); ``runtime`` owns the ONNX
Runtime session, ``yolo`` the pure NumPy letterbox / decode / NMS, ``detector`` joins them into
the ``YoloDetector`` the product ships. Importing this package loads none of them.
"""
