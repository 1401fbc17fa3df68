"""Training-time input: tf.data readers of the TFRecords `pipelines/` writes, and masking
applied on the fly. (Empty on purpose: `manifest` must import without TensorFlow.)"""
