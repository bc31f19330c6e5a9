# One image for every replica and for the one-shot `chat-server migrate` (docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# The widget and the demo site are served from the checkout, not the installed package.
ENV CHAT_WIDGET_DIR=/src/widget
# The whole context (.dockerignore keeps out the venv, tests and caches), so packages added
# later (integrations/) are installed without touching this file.
COPY . .
RUN pip install . \
    && useradd --create-home --uid 10001 chat

# Not root; the working directory holds data/ (SQLite and the generated secret key) for a
# single container without DATABASE_URL and CHAT_SECRET_KEY.
USER chat
WORKDIR /home/chat
EXPOSE 8000

# SIGTERM (docker stop): sockets are closed with 1001 so clients resume on another replica.
CMD ["chat-server", "serve", "--host", "0.0.0.0"]
