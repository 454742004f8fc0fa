"""Serving exports: TF Serving's folder layout (`layout`), the files TF Serving reads besides the
SavedModel (`tf_serving`), and `tfrnn serve`, a development stand-in for TF Serving's REST API
(`repository`, `server`).

Import the modules themselves; this package imports nothing, so `tfrnn.serving.layout` loads
without TensorFlow and the server's web stack.
"""
