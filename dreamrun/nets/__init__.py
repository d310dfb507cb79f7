"""Networks: presets to nn.Module, weights, the truncated and rewritten feature network, precision,
and the layer browser."""
