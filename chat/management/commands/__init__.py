"""createroom and ensuredemo."""
