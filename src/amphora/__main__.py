from amphora.cli import app

app()
