def can_manage_api_keys(user) -> bool:
    return user.is_active and user.is_staff and user.has_perm("api.manage_api_keys")


def can_manage_webhooks(user) -> bool:
    return user.is_active and user.is_staff and user.has_perm("api.manage_webhooks")
