"""volsurf.pricing"""
