# Any container host, or a Hugging Face Docker Space (a paid plan there; see docs/hosting.md).
#   docker build -t dermlab . && docker run -p 7860:7860 dermlab
# Serves the bundled zoo (model_zoo/models) through LiteRT, with the bundled example cases (assets/examples);
# no dataset and no TensorFlow are needed. Mount a data folder and set DERMLAB_DATA_DIR to use whole test splits.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false STREAMLIT_SERVER_HEADLESS=true
RUN useradd --create-home --uid 1000 user
WORKDIR /home/user/app
COPY --chown=user requirements.txt .
RUN pip install -r requirements.txt
COPY --chown=user . .
# Runs as an unprivileged user (uid 1000, as Hugging Face Spaces expect).
USER user
EXPOSE 7860
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:7860/_stcore/health', timeout=4).status != 200)"
CMD ["streamlit", "run", "streamlit_app.py", "--server.port=7860", "--server.address=0.0.0.0"]
