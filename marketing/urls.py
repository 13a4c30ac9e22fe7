from django.urls import path

from marketing.api import CampaignDetailView, CampaignSendView
from marketing.views import unsubscribe

urlpatterns = [
    path("api/campaigns/<int:campaign_id>/", CampaignDetailView.as_view(), name="api-campaign-detail"),
    path("api/campaigns/<int:campaign_id>/send/", CampaignSendView.as_view(), name="api-campaign-send"),
    path("u/<str:token>/", unsubscribe, name="unsubscribe"),
]
