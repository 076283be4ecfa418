from creditctl.main import app

app(prog_name="creditctl")
