"""One module per MiniGrid family: its layout generator (``_gen_grid``) and its registered ids."""
