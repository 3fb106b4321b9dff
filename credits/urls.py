app_name = "credits"
urlpatterns = []
