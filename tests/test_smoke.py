def test_login_page_renders(client):
    response = client.get("/auth/login")
    assert response.status_code == 200
    assert b"Sign in" in response.data


def test_staff_lands_on_intake(client, login_as):
    login_as("staff")
    response = client.get("/", follow_redirects=True)
    assert b"Intake queue" in response.data
