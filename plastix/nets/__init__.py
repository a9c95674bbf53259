"""Networks: torsos, heads, and the modules agents build from them."""
