"""The original FCN.tensorflow's TensorflowUtils: every function it had, with its signature, and the layers the
network is built from. They live in fcn_tensorflow/net/layers.py; this file keeps the name its users import."""
from fcn_tensorflow.net.layers import (  # noqa: F401 (re-exported)
    PretrainedLoader, add_activation_summary, add_gradient_summary, add_to_regularization_and_summary, avg_pool_2x2,
    batch_norm, bias_variable, bottleneck_unit, conv2d_as_matmul, conv2d_basic, conv2d_strided, conv2d_transpose,
    conv2d_transpose_as_matmul, conv2d_transpose_strided, get_model_data, get_tensor_size, get_variable, image_summary,
    leaky_relu, local_response_norm, matmul_in_row_blocks, max_pool_2x2, maybe_download_and_extract,
    pretrained_variable, process_image, save_image, unprocess_image, variables_of, weight_variable)
