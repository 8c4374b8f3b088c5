"""TF.js models outside this process: under Node.js and in a browser page.

    assets.py    where the JS program and its npm packages are; what is missing, in one line
    channel.py   the loopback (or --serve) HTTP server: the page, its files, the model, and
                 edgekit.link/1 frames carried over fetch(), with a one-time token
    chromium.py  headless Chromium driven by Playwright, watched for crashes and page errors
    runner.py    the LinkRunner for TF.js and the runners the `node` and `browser` kinds open

The JS side lives in the repository's `js/` folder (docs/web.md).
"""
