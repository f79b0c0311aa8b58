"""factory-boy factories for tenant data. Use them inside tenant_context(tenant)."""

import uuid
from decimal import Decimal

import factory

from accounts.models import Role, User
from chat.models import Conversation, Message
from gateway.models import ModelCall

TEST_ISSUER = "http://idp.test/o"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User

    issuer = TEST_ISSUER
    subject = factory.LazyFunction(lambda: f"sub-{uuid.uuid4()}")
    username = factory.LazyAttribute(lambda user: f"u-{user.subject}"[:40])
    email = factory.Sequence(lambda n: f"person{n}@example.test")
    display_name = factory.Faker("name")
    roles = factory.LazyFunction(lambda: [Role.END_USER.value])


class ConversationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Conversation

    owner = factory.SubFactory(UserFactory)
    title = factory.Faker("sentence", nb_words=4)


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Message

    conversation = factory.SubFactory(ConversationFactory)
    role = Message.Role.USER
    content = factory.Faker("sentence")


class ModelCallFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ModelCall

    request_id = factory.LazyFunction(uuid.uuid4)
    user = factory.SubFactory(UserFactory)
    model_requested = "sim-model"
    model_served = "sim-model"
    provider = "simulator"
    messages = factory.LazyFunction(lambda: [{"role": "user", "content": "hello"}])
    response = "hi there"
    tokens_in = 10
    tokens_out = 5
    cost = Decimal("0.00002")
    latency_ms = 120
    status = ModelCall.Status.OK


class PromptTemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "prompts.PromptTemplate"

    name = factory.Sequence(lambda n: f"Agent {n}")
    description = factory.Faker("sentence", nb_words=6)


class PromptVersionFactory(factory.django.DjangoModelFactory):
    """A version written directly (no audit event): for fixtures. Tests of behaviour use prompts.actions."""

    class Meta:
        model = "prompts.PromptVersion"

    template = factory.SubFactory(PromptTemplateFactory)
    number = factory.Sequence(lambda n: n + 1)
    body = factory.Faker("paragraph")
    model = "sim-model"
    max_tokens = 64
