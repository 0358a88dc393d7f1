"""The depth network (``net``: encoder, disparity decoder, pose) and its encoders by name
(``encoders``: ResNet ANN, spiking ResNet, MS-ResNet with IF/LIF/I-LIF; pretrained weights)."""
