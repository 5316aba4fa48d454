"""What serving does when the layers below announce something (connected in ServingConfig.ready)."""


def on_release_decided(sender, run, decision, **kwargs):
    """A blocked release suspends the adapter's active deployments, in the decision's transaction."""
    from serving.actions import suspend_after_block

    suspend_after_block(run, decision)
