from django.contrib import admin

from marketing.models import Campaign, CampaignDelivery, Subscriber


@admin.register(Subscriber)
class SubscriberAdmin(admin.ModelAdmin[Subscriber]):
    list_display = ("email", "tenant", "created_at", "unsubscribed_at")
    list_filter = (("unsubscribed_at", admin.EmptyFieldListFilter),)
    search_fields = ("email", "tenant__slug")
    list_select_related = ("tenant",)
    raw_id_fields = ("tenant",)


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin[Campaign]):
    list_display = ("subject", "tenant", "status", "created_at", "sent_at")
    list_filter = ("status",)
    search_fields = ("subject", "tenant__slug")
    list_select_related = ("tenant",)
    raw_id_fields = ("tenant",)


@admin.register(CampaignDelivery)
class CampaignDeliveryAdmin(admin.ModelAdmin[CampaignDelivery]):
    list_display = ("campaign", "subscriber", "status", "attempts", "sent_at")
    list_filter = ("status",)
    search_fields = ("subscriber__email", "campaign__subject")
    list_select_related = ("campaign", "subscriber")
    raw_id_fields = ("campaign", "subscriber")
    readonly_fields = ("attempts", "sent_at", "last_error")
